"""bids_app.report."""
