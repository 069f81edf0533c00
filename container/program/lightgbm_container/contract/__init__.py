"""The contract between the HTTP layer and whatever answers a model's requests (the bottom layer).

- :mod:`.handler`: what a handler is (load a model directory, turn a request into a
  response), the request and response it sees, and the step times it reports;
- :mod:`.negotiation`: which media type to answer in, from the ``Accept`` header (RFC 9110),
  one rule for the built-in handler, scripts and custom services.

``serving`` composes handlers; ``builtin``, ``user_code`` and ``multi_model`` implement or hold
them. All depend on this package, and it on nothing above it (``lint-imports`` checks).
"""
