"""The analyst desk: a web page over the Redis alert store (``parcelwatch desk``)."""
