"""The portal: aiohttp app serving the API and the web UIs."""
