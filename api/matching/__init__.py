"""Search, partner suggestions and dismissals; the embeddings and the network index they read."""
