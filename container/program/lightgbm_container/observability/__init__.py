"""What the container tells its operators: metrics (:mod:`.metrics`, served by
:mod:`.exposition` at ``GET /metrics`` and summarised at ``GET /stats``), logs in plain or
JSON lines (:mod:`.logs`), and the request id every line and error of a request carries
(:mod:`.request_ids`).

A new metric is one definition in :mod:`.metrics`; a new log field is one name in :mod:`.logs`.
"""
