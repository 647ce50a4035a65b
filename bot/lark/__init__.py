"""The Lark transport: long connection in, REST API out, events normalised in between."""
