"""One run, in stages: the request, the evaluation plan, preparation and training (stages), evaluation per item,
KL(base || tuned), the answer-class probe, the record; trackers."""
