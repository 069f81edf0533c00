"""MMS's documented custom service (docs/custom_service.md's ModelHandler), adapted to load a LightGBM model.

The structure is MMS's template unchanged: a ModelHandler class with initialize,
preprocess, inference, postprocess and handle, and a module-level handle(data, context)
that initialises on first use and returns None for MMS's initialisation call.
"""

import logging
import os

import lightgbm as lgb
import numpy as np


class ModelHandler:
    """
    A base Model handler implementation.
    """

    def __init__(self):
        self.error = None
        self._context = None
        self._batch_size = 0
        self.initialized = False
        self.model = None

    def initialize(self, context):
        """
        Initialize model. This will be called during model loading time
        :param context: Initial context contains model server system properties.
        :return:
        """
        self._context = context
        self._batch_size = context.system_properties["batch_size"]
        model_dir = context.system_properties.get("model_dir")
        self.model = lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))
        self.initialized = True

    def preprocess(self, batch):
        """
        Transform raw input into model input data.
        :param batch: list of raw requests, should match batch size
        :return: list of preprocessed model input data
        """
        assert self._batch_size == len(batch), f"Invalid input batch size: {len(batch)}"
        rows = []
        for request in batch:
            body = request.get("body")
            if isinstance(body, (bytes, bytearray)):
                body = body.decode("utf-8")
            rows.append(np.array([[float(v) for v in line.split(",")] for line in body.splitlines()]))
        return rows

    def inference(self, model_input):
        """
        Internal inference methods
        :param model_input: transformed model input data
        :return: list of inference output in NDArray
        """
        return [self.model.predict(rows) for rows in model_input]

    def postprocess(self, inference_output):
        """
        Return predict result in batch.
        :param inference_output: list of inference output
        :return: list of predict results
        """
        return ["\n".join(repr(float(v)) for v in output) for output in inference_output]

    def handle(self, data, context):
        """
        Call preprocess, inference and post-process functions
        :param data: input data
        :param context: mms context
        """
        model_input = self.preprocess(data)
        model_out = self.inference(model_input)
        return self.postprocess(model_out)


_service = ModelHandler()


def handle(data, context):
    if not _service.initialized:
        _service.initialize(context)

    if data is None:
        return None

    logging.debug("handling %d request(s)", len(data))
    return _service.handle(data, context)
