"""bids_app.roi."""
