"""Pure detection logic and the window store of parcelwatch.

Nothing here imports faust, aiokafka or prometheus_client: the core takes the clock and the
store as arguments, so it can be used as a library and tested without a broker.
"""
