"""``churnwatch calibrate``: fit the churn-risk model on labelled history and write its versioned file."""
