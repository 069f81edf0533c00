"""The built-in LightGBM behaviour: a :class:`~..contract.handler.Handler` for LightGBM models.

- :mod:`.handler`: load, then one answer path: decode -> validate -> answer -> encode;
- :mod:`.output_selection`: which output kinds a request chose (or none: the default answer);
- :mod:`.styles`: response styles, each a JSON (or other) layout of the same answer.

Its steps have the SageMaker Inference Toolkit's shapes, so user code (:mod:`..user_code`)
falls back to them for the functions it does not define.
"""
