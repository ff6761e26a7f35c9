"""bids_app.bidsio."""
