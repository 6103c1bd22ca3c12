"""Tools that drive the app from the command line: demo data, evaluation, benchmark."""
