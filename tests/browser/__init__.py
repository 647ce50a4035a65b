"""Browser tests: the sandbox web chat driven in headless Chromium (Debian's /usr/bin/chromium)."""
