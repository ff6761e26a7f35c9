"""bids_app.pipelines."""
