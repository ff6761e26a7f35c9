"""bids_app.kinetics."""
