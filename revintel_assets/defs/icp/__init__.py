"""ICP and whitespace (issue 5): per account and division, how likely is a purchase in the
next window, and where is the untapped revenue. Pure SQL / numpy modules (calendar, features,
model, whitespace) called by the Dagster assets in `assets.py`."""
