"""`runbus demo`: a realistic mixed workload, so a new user has history, dead letters and coach
suggestions to look at. `logic` builds the events (pure, seeded); `io` publishes them."""
