"""The library every Cloud Function uses: models, logic and the adapters at the edges."""
