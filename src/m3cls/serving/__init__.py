"""``m3cls serve``: the FastAPI app (app), its HTTP edge (http), Prometheus metrics (metrics), token-budget
micro-batching (batching) and the web page (page)."""
