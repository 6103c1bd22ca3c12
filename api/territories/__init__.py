"""The territory referential: communes, EPCI, départements, régions."""
