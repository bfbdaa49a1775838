"""Where tools come from (sources: YAML/Python handlers, later MCP servers) and the one runner that
applies every policy to all of them."""
