"""bids_app.group."""
