"""The HTTP API (aiohttp): routes per API.md, the envelope, JWT auth, the OpenAPI document."""
