"""bids_app.simulation."""
