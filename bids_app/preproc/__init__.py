"""bids_app.preproc."""
