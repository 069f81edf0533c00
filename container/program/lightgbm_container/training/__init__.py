"""``train``: read config -> parse hyperparameters (:mod:`.hyperparameters`) -> load channels
(:mod:`.channels`) -> fit -> write model + metadata atomically (:mod:`.job`)."""
