"""bids_app.stats."""
