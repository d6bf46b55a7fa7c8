"""``cidb bench``: a fixed matrix of load tests, their ratios, and a gate against a stored baseline."""
