"""bids_app.cli."""
