// larkops sandbox web chat: talks to the emulator's control API under /sandbox/api.
//
// Everything in the transcript (user text, bot text, card JSON) is untrusted: the DOM is built
// with createElement/textContent only. innerHTML is never used, so nothing from a message can
// become markup; the markdown subset is parsed into text nodes and a few fixed elements.
"use strict";

(() => {
  const API = "/sandbox/api";
  const POLL_MS = 500;
  const TOAST_MS = 4000;
  const STORE_KEY = "larkops-sandbox";

  const state = {
    bot: { open_id: "", name: "larkops" },
    users: [],
    chats: [],
    user: "",
    chat: "",
    rendered: new Map(), // message_id -> {updatedAt, node, message}
    generation: 0, // bumps on chat switch: stale poll answers are dropped
    polling: false,
  };

  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers -------------------------------------------------------------------------

  /** An element with optional class, text and attributes (values set as attributes/text only). */
  function el(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.cls) node.className = options.cls;
    if (options.text !== undefined) node.textContent = String(options.text);
    for (const [key, value] of Object.entries(options.attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(key, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  /** The display string of a Lark text object ({content} / {i18n_content}) or a bare string. */
  function textOf(obj) {
    if (obj === undefined || obj === null) return "";
    if (typeof obj === "string") return obj;
    if (typeof obj !== "object") return String(obj);
    if (typeof obj.content === "string") return obj.content;
    const i18n = obj.i18n_content || obj.i18n;
    if (i18n && typeof i18n === "object") {
      const pick = i18n.zh_cn ?? i18n.en_us ?? Object.values(i18n)[0];
      return typeof pick === "string" ? pick : "";
    }
    return "";
  }

  function asList(value) {
    return Array.isArray(value) ? value : [];
  }

  // ---- markdown (safe subset) --------------------------------------------------------------

  /** A person's display name (Lark renders <at id=…> as the name), else the id itself. */
  function nameOf(id) {
    if (id === "all") return "所有人";
    const known = [state.bot, ...state.users].find((user) => user.open_id === id);
    return known ? known.name : id;
  }

  // Lark-specific inline tags become plain text before parsing; the result is still only text.
  function unLark(raw) {
    return String(raw)
      .replace(/<at\s+(?:id|user_id|open_id|email)=["']?([^"'\s>]+)["']?\s*>\s*<\/at>/gi,
        (_, id) => `@${nameOf(id)}`)
      .replace(/<font\b[^>]*>([\s\S]*?)<\/font>/gi, "$1")
      .replace(/<text_tag\b[^>]*>([\s\S]*?)<\/text_tag>/gi, "[$1]")
      .replace(/<br\s*\/?>/gi, "\n");
  }

  /** The characters card markdown shows for its numeric and named character references
   * (`&#91;` is `[`): decoded as text is inserted, after the markdown was parsed. */
  const NAMED = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };
  function decode(text) {
    return String(text).replace(/&(#\d{1,7}|#x[0-9a-f]{1,6}|[a-z]{2,6});/gi, (whole, code) => {
      if (code[0] !== "#") return NAMED[code.toLowerCase()] ?? whole;
      const point = code[1].toLowerCase() === "x" ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10);
      return point > 0 && point <= 0x10ffff ? String.fromCodePoint(point) : whole;
    });
  }

  const INLINE =
    /\*\*([^*]+?)\*\*|`([^`]+?)`|~~([^~]+?)~~|\[([^\]]+?)\]\(([^)\s]+?)\)|(?<![\w*])\*([^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])/g;

  /** Append the inline markdown of `text` to `parent`: bold, code, strike, italic, links. */
  function inline(text, parent) {
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      if (match.index > last) parent.append(decode(text.slice(last, match.index)));
      const [, bold, code, strike, linkText, href, italic] = match;
      if (bold !== undefined) parent.append(inline(bold, el("strong")));
      else if (code !== undefined) parent.append(el("code", { text: decode(code) }));
      else if (strike !== undefined) parent.append(inline(strike, el("del")));
      else if (linkText !== undefined) {
        if (/^https?:\/\//i.test(href)) {
          const link = el("a", { attrs: { href, target: "_blank", rel: "noopener noreferrer" } });
          parent.append(inline(linkText, link));
        } else parent.append(match[0]);
      } else if (italic !== undefined) parent.append(inline(italic, el("em")));
      last = match.index + match[0].length;
    }
    if (last < text.length) parent.append(decode(text.slice(last)));
    return parent;
  }

  /** A DOM fragment for the markdown subset: lines, "- " / "1. " lists, headings, fences, hr. */
  function markdown(raw, cls = "md") {
    const root = el("div", { cls, attrs: { "data-testid": "markdown" } });
    const lines = unLark(raw).replace(/\r\n?/g, "\n").split("\n");
    let list = null;
    let fence = null;
    let pendingBreak = false;
    const breakLine = () => {
      if (pendingBreak) root.append(el("br"));
      pendingBreak = false;
    };
    for (const line of lines) {
      if (fence) {
        if (/^\s*```/.test(line)) {
          root.append(el("pre", {}, [el("code", { text: fence.join("\n") })]));
          fence = null;
        } else fence.push(line);
        continue;
      }
      if (/^\s*```/.test(line)) {
        list = null;
        pendingBreak = false;
        fence = [];
        continue;
      }
      const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
      if (bullet || numbered) {
        const kind = bullet ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== kind) {
          pendingBreak = false;
          list = el(kind);
          root.append(list);
        }
        list.append(inline((bullet || numbered)[1], el("li")));
        continue;
      }
      list = null;
      const heading = /^\s*#{1,6}\s+(.*)$/.exec(line);
      if (heading) {
        pendingBreak = false;
        root.append(inline(heading[1], el("h4")));
      } else if (/^\s*(-{3,}|\*{3,})\s*$/.test(line)) {
        pendingBreak = false;
        root.append(el("hr"));
      } else {
        breakLine();
        inline(line, root);
        pendingBreak = true;
      }
    }
    if (fence) root.append(el("pre", {}, [el("code", { text: fence.join("\n") })]));
    return root;
  }

  // ---- cards (Lark Card JSON 2.0, with the common 1.0 tags) --------------------------------

  /** The callback value of a button: behaviors[type=callback].value, else its `value`. */
  function buttonValue(button) {
    const callback = asList(button.behaviors).find((b) => b && b.type === "callback");
    if (callback) return callback.value;
    return button.value;
  }

  function openUrl(button) {
    const behavior = asList(button.behaviors).find((b) => b && b.type === "open_url");
    const url = behavior ? behavior.default_url || behavior.pc_url : button.url;
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : "";
  }

  function placeholder(tag) {
    return el("div", { cls: "unknown", text: `[${tag || "?"}]`, attrs: { "data-testid": "unknown" } });
  }

  function renderButton(button, ctx) {
    const kind = typeof button.type === "string" ? button.type : "default";
    const node = el("button", {
      cls: `card-button ${kind}`,
      text: textOf(button.text) || "按钮",
      attrs: { type: "button", "data-testid": "card-button", "data-name": button.name || "" },
    });
    if (button.disabled) node.disabled = true;
    const url = openUrl(button);
    const form = ctx.form;
    const action = button.form_action_type || button.action_type;
    node.addEventListener("click", () => {
      if (action === "reset" && form) return form.reset();
      if (url && buttonValue(button) === undefined) {
        window.open(url, "_blank", "noopener,noreferrer");
        return;
      }
      const formValue = action === "submit" && form ? form.values() : undefined;
      sendAction(ctx.messageId, button, formValue, node);
    });
    return node;
  }

  function renderField(element, ctx, control) {
    const label = textOf(element.label);
    const wrap = el("label", { cls: "field" }, [label ? el("span", { text: label }) : null, control]);
    if (ctx.form && element.name) ctx.form.register(element.name, control);
    return wrap;
  }

  function renderInput(element, ctx) {
    const multi = element.input_type === "multiline_text" || (element.rows || 1) > 1;
    const control = el(multi ? "textarea" : "input", {
      attrs: {
        name: element.name || "",
        placeholder: textOf(element.placeholder),
        "data-testid": "card-input",
        type: multi ? undefined : element.input_type === "password" ? "password" : "text",
      },
    });
    control.value = textOf(element.default_value);
    control.dataset.initial = control.value;
    return renderField(element, ctx, control);
  }

  function renderSelect(element, ctx) {
    const control = el("select", { attrs: { name: element.name || "", "data-testid": "card-select" } });
    control.append(el("option", { text: textOf(element.placeholder) || "请选择", attrs: { value: "" } }));
    for (const option of asList(element.options)) {
      const value = option && option.value !== undefined ? String(option.value) : "";
      control.append(el("option", { text: textOf(option && option.text) || value, attrs: { value } }));
    }
    control.value = element.initial_option !== undefined ? String(element.initial_option) : "";
    control.dataset.initial = control.value;
    return renderField(element, ctx, control);
  }

  /** A form collects its named inputs so a submit button can post form_value. */
  function renderForm(element, ctx) {
    const controls = new Map();
    const form = {
      register: (name, control) => controls.set(name, control),
      values: () => Object.fromEntries([...controls].map(([name, c]) => [name, c.value])),
      reset: () => controls.forEach((c) => (c.value = c.dataset.initial || "")),
    };
    const node = el("div", { cls: "form", attrs: { "data-testid": "card-form", "data-name": element.name || "" } });
    renderElements(element.elements, { ...ctx, form }, node);
    return node;
  }

  function renderColumns(element, ctx) {
    const row = el("div", { cls: "column-set", attrs: { "data-flex-mode": element.flex_mode || "" } });
    for (const column of asList(element.columns)) {
      const col = el("div", { cls: "column", attrs: { "data-width": column && column.width } });
      if (column && typeof column.weight === "number") col.style.flexGrow = String(column.weight);
      renderElements(column && column.elements, ctx, col);
      row.append(col);
    }
    return row;
  }

  function renderDiv(element, ctx) {
    const node = el("div", { cls: "div" });
    if (element.text) node.append(renderText(element.text));
    const fields = asList(element.fields);
    if (fields.length) {
      const grid = el("div", { cls: "column-set" });
      for (const field of fields) grid.append(el("div", { cls: "column" }, [renderText(field && field.text)]));
      node.append(grid);
    }
    if (element.extra) renderElements([element.extra], ctx, node);
    return node;
  }

  /** plain_text keeps newlines as text; lark_md/markdown goes through the markdown subset. */
  function renderText(text) {
    if (!text) return null;
    const small = text.text_size === "notation" ? " notation" : "";
    if (text.tag === "lark_md" || text.tag === "markdown") return markdown(textOf(text), "md" + small);
    return el("div", { cls: "plain" + small, text: textOf(text) });
  }

  function renderImage(element) {
    const alt = textOf(element.alt) || textOf(element.title) || "图片";
    return el("div", { cls: "img-placeholder", text: `[图片] ${alt}`, attrs: { "data-testid": "card-img" } });
  }

  function renderNote(element, ctx) {
    const node = el("div", { cls: "note", attrs: { "data-testid": "card-note" } });
    for (const child of asList(element.elements)) {
      if (child && child.tag === "img") node.append(el("span", { text: "[图片] " }));
      else node.append(renderText(child));
    }
    return node;
  }

  function renderPanel(element, ctx) {
    const node = el("details", { cls: "panel" });
    if (element.expanded) node.open = true;
    const header = element.header || {};
    node.append(el("summary", { text: textOf(header.title) || "…" }));
    renderElements(element.elements, ctx, node);
    return node;
  }

  const RENDERERS = {
    markdown: (e) => markdown(textOf(e), e.text_size === "notation" ? "md notation" : "md"),
    lark_md: (e) => markdown(textOf(e)),
    plain_text: (e) => renderText(e),
    div: renderDiv,
    hr: () => el("hr"),
    column_set: renderColumns,
    button: renderButton,
    action: (e, ctx) => {
      const row = el("div", { cls: "column-set action" });
      renderElements(e.actions, ctx, row);
      return row;
    },
    form: renderForm,
    input: renderInput,
    select_static: renderSelect,
    note: renderNote,
    img: renderImage,
    image: renderImage,
    collapsible_panel: renderPanel,
  };

  /** Render each element into `parent`; an unknown tag or a broken element is a placeholder. */
  function renderElements(elements, ctx, parent) {
    for (const element of asList(elements)) {
      const tag = element && typeof element === "object" ? element.tag : undefined;
      let node;
      try {
        const render = Object.prototype.hasOwnProperty.call(RENDERERS, tag) ? RENDERERS[tag] : null;
        node = render ? render(element, ctx) : placeholder(tag);
      } catch (error) {
        console.warn("card element failed", tag, error);
        node = placeholder(tag);
      }
      if (node) {
        if (node.dataset && tag) node.dataset.tag = String(tag);
        parent.append(node);
      }
    }
    return parent;
  }

  function renderCard(card, messageId) {
    const node = el("div", { cls: "card", attrs: { "data-testid": "card" } });
    if (!card || typeof card !== "object") {
      node.append(placeholder("card"));
      return node;
    }
    const header = card.header;
    if (header && typeof header === "object") {
      const band = el("div", {
        cls: "card-header",
        attrs: { "data-testid": "card-header", "data-template": header.template || "default" },
      });
      band.append(el("div", { cls: "title", text: textOf(header.title), attrs: { "data-testid": "card-title" } }));
      const subtitle = textOf(header.subtitle);
      if (subtitle) band.append(el("div", { cls: "subtitle", text: subtitle }));
      node.append(band);
    }
    const body = el("div", { cls: "card-body", attrs: { "data-testid": "card-body" } });
    const elements = card.body && typeof card.body === "object" ? card.body.elements : card.elements;
    if (card.type === "template") body.append(placeholder("template card"));
    renderElements(elements, { messageId, form: null }, body);
    node.append(body);
    return node;
  }

  // ---- messages ----------------------------------------------------------------------------

  function clock(ms) {
    const date = new Date(Number(ms) || 0);
    return date.toLocaleTimeString("zh-CN", { hour12: false });
  }

  function renderMessage(message) {
    const sender = message.sender || {};
    const type = sender.type === "bot" ? "bot" : "user";
    const node = el("li", {
      cls: `message ${type}`,
      attrs: {
        "data-testid": "message",
        "data-message-id": message.message_id,
        "data-sender-type": type,
        "data-msg-type": message.msg_type,
        "data-updated-at": message.updated_at,
      },
    });
    node.append(el("div", { cls: "meta", text: `${sender.name || sender.open_id || ""} · ${clock(message.created_at)}` }));
    const parent = message.parent_id && state.rendered.get(message.parent_id);
    if (parent) {
      const quoted = parent.message.text || textOf(parent.message.card?.header?.title) || "";
      node.append(el("div", { cls: "reply-to", text: `回复 ${parent.message.sender?.name || ""}: ${quoted}` }));
    }
    if (message.msg_type === "interactive") node.append(renderCard(message.card, message.message_id));
    else if (message.msg_type === "text" || message.msg_type === "post")
      node.append(el("div", { cls: "bubble", text: message.text || "", attrs: { "data-testid": "message-text" } }));
    else node.append(el("div", { cls: "bubble unknown", text: `[${message.msg_type}] ${message.text || ""}` }));
    for (const notice of asList(message.urgent)) {
      const who = asList(notice.open_ids).map(nameOf).join("、");
      const kind = URGENT_KINDS[notice.kind] || notice.kind;
      node.append(el("div", { cls: "urgent", text: `🔔 ${kind} → ${who}`, attrs: { "data-testid": "urgent" } }));
    }
    return node;
  }

  const URGENT_KINDS = { urgent_app: "应用内加急", urgent_sms: "短信加急", urgent_phone: "电话加急" };

  /** Groups the bot made (war rooms) appear in the chat list. */
  async function refreshChats() {
    try {
      const data = await api("/state");
      const chats = asList(data.chats);
      if (chats.length === state.chats.length) return;
      state.chats = chats;
      fillSelect($("chat-select"), state.chats, "chat_id", state.chat);
    } catch (error) {
      // the next round tries again
    }
  }

  /** Merge a poll answer into the list: append new messages, replace changed ones. */
  function applyMessages(messages) {
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const ids = new Set(messages.map((m) => m.message_id));
    if ([...state.rendered.keys()].some((id) => !ids.has(id))) resetList();
    let grew = false;
    for (const message of messages) {
      const known = state.rendered.get(message.message_id);
      if (known && known.updatedAt === message.updated_at) continue;
      const node = renderMessage(message);
      if (known) known.node.replaceWith(node);
      else {
        list.append(node);
        grew = true;
      }
      state.rendered.set(message.message_id, { updatedAt: message.updated_at, node, message });
    }
    if (grew && nearBottom) list.scrollTop = list.scrollHeight;
  }

  function resetList() {
    state.rendered.clear();
    $("messages").replaceChildren();
  }

  // ---- API -----------------------------------------------------------------------------------

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const response = await fetch(API + path, init);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const detail = data && (data.msg || data.error || data.detail);
      throw new Error(detail ? String(detail) : `HTTP ${response.status}`);
    }
    return data;
  }

  function setStatus(kind, text) {
    const status = $("status");
    status.dataset.state = kind;
    status.textContent = text;
  }

  async function poll() {
    if (state.polling || !state.chat) return;
    state.polling = true;
    const generation = state.generation;
    try {
      const data = await api(`/chats/${encodeURIComponent(state.chat)}/messages`);
      if (generation === state.generation) applyMessages(asList(data && data.messages));
      setStatus("ok", "已连接");
    } catch (error) {
      setStatus("error", `连接失败: ${error.message}`);
    } finally {
      state.polling = false;
    }
  }

  function currentChat() {
    return state.chats.find((c) => c.chat_id === state.chat) || null;
  }

  function isP2p(chat) {
    if (!chat) return false;
    const type = chat.chat_type || chat.type;
    return type ? type === "p2p" : String(chat.chat_id).startsWith("oc_p2p_");
  }

  /** In group chats the bot only hears @mentions: prepend one unless the user typed one. */
  function withMention(text) {
    if (isP2p(currentChat()) || /^\s*@/.test(text)) return text;
    return `@${state.bot.name || "larkops"} ${text}`;
  }

  async function sendText(event) {
    event.preventDefault();
    const input = $("input");
    const text = input.value.trim();
    if (!text || !state.chat || !state.user) return;
    const button = $("send");
    button.disabled = true;
    try {
      await api(`/chats/${encodeURIComponent(state.chat)}/messages`, { sender: state.user, text: withMention(text) });
      input.value = "";
      await poll();
    } catch (error) {
      showToast({ type: "error", content: `发送失败: ${error.message}` });
    } finally {
      button.disabled = false;
      input.focus();
    }
  }

  async function sendAction(messageId, button, formValue, node) {
    const body = { operator: state.user, value: buttonValue(button) ?? {}, name: button.name || "" };
    if (formValue !== undefined) body.form_value = formValue;
    node.disabled = true;
    node.classList.add("busy");
    try {
      const data = await api(`/messages/${encodeURIComponent(messageId)}/actions`, body);
      if (data && data.toast) showToast(data.toast);
      await poll();
    } catch (error) {
      showToast({ type: "error", content: `操作失败: ${error.message}` });
    } finally {
      node.disabled = Boolean(button.disabled);
      node.classList.remove("busy");
    }
  }

  function showToast(toast) {
    const allowed = ["success", "error", "info", "warning"];
    const type = allowed.includes(toast.type) ? toast.type : "info";
    const node = el("div", { cls: "toast", text: textOf(toast), attrs: { "data-testid": "toast", "data-type": type, role: "status" } });
    $("toasts").append(node);
    setTimeout(() => node.remove(), TOAST_MS);
  }

  // ---- selection ---------------------------------------------------------------------------

  function remember() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify({ user: state.user, chat: state.chat }));
    } catch (_) {
      /* storage may be disabled */
    }
  }

  function recalled() {
    try {
      return JSON.parse(localStorage.getItem(STORE_KEY) || "{}") || {};
    } catch (_) {
      return {};
    }
  }

  function fillSelect(select, items, valueKey, current) {
    select.replaceChildren(...items.map((item) => el("option", { text: item.name || item[valueKey], attrs: { value: item[valueKey] } })));
    select.value = current;
  }

  function chooseChat(chatId) {
    state.chat = chatId;
    state.generation += 1;
    resetList();
    const chat = currentChat();
    $("chat-title").textContent = chat ? `${chat.name || chat.chat_id}${isP2p(chat) ? "（单聊）" : ""}` : "";
    remember();
    poll();
  }

  // ---- the demo service (alert → diagnosis → approve → fix → verify) --------------------------

  async function refreshDemo() {
    try {
      const data = await api("/demo");
      $("demo").hidden = false;
      const healthy = Boolean(data && data.healthy);
      const roles = (data && data.roles) || {};
      const bots = new Set(asList(data && data.bots));
      for (const option of [...$("user-select").options, ...$("chat-select").options]) {
        const peer = state.chats.find((c) => c.chat_id === option.value);
        const bot = bots.has(option.value) || (peer && isP2p(peer) && [...bots].some((b) => peer.chat_id === `oc_p2p_${b.replace(/^ou_/, "")}`));
        if (bot) option.remove();  // the alert bot posts alerts; nobody types as it
      }
      for (const option of $("user-select").options) {
        const user = state.users.find((u) => u.open_id === option.value);
        const role = roles[option.value];
        if (user && role) option.textContent = `${user.name}（${role}）`;
      }
      $("demo-state").textContent = healthy ? "正常" : "故障";
      $("demo-state").dataset.healthy = String(healthy);
    } catch (_) {
      $("demo").hidden = true;
    }
  }

  async function breakDemo() {
    try {
      await api("/demo/break", {});
      showToast({ type: "info", content: "演示服务已弄坏：告警机器人正在运维值班群里发告警" });
      await refreshDemo();
    } catch (error) {
      showToast({ type: "error", content: `操作失败: ${error.message}` });
    }
  }

  function bindControls() {
    $("demo-break").addEventListener("click", breakDemo);
    $("composer").addEventListener("submit", sendText);
    $("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) sendText(event);
    });
    $("user-select").addEventListener("change", (event) => {
      state.user = event.target.value;
      remember();
    });
    $("chat-select").addEventListener("change", (event) => chooseChat(event.target.value));
  }

  /** Load users and chats (retrying until the emulator answers), then start polling. */
  async function start() {
    try {
      const data = await api("/state");
      state.bot = data.bot || state.bot;
      state.users = asList(data.users);
      state.chats = asList(data.chats);
    } catch (error) {
      setStatus("error", `无法读取沙箱状态: ${error.message}`);
      setTimeout(start, 2000);
      return;
    }
    const saved = recalled();
    const has = (items, key, value) => items.some((item) => item[key] === value);
    state.user = has(state.users, "open_id", saved.user) ? saved.user : state.users[0]?.open_id || "";
    const chat = has(state.chats, "chat_id", saved.chat) ? saved.chat : state.chats[0]?.chat_id || "";
    fillSelect($("user-select"), state.users, "open_id", state.user);
    fillSelect($("chat-select"), state.chats, "chat_id", chat);
    document.body.dataset.ready = "true";
    chooseChat(chat);
    setInterval(poll, POLL_MS);
    setInterval(refreshChats, 5000);
    refreshDemo();
    setInterval(refreshDemo, 2000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    bindControls();
    start();
  });
})();
