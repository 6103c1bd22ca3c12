"""The matching engine: plain Python, numpy and scikit-learn; no web framework, no ORM."""
