"""The aiohttp front end: the application, its middlewares and handlers."""
