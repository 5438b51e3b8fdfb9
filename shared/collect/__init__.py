"""Stage 1, collection: tracking calls in, validated and enriched rows out, ready to publish."""
