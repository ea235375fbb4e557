"""The object Hypercorn serves: `hypercorn api.asgi:app`."""

from api.edge.bridge import create_asgi_app

app = create_asgi_app()
