"""The demo: mock IdP + three sample apps + the proxy, all on localhost."""
