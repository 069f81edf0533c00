"""A custom service as one class (no module-level handle): MMS instantiates it, initialize(context), handle(data, context)."""

import json
import os

import lightgbm as lgb
import numpy as np


class LightGBMService:
    def initialize(self, context):
        self.model = lgb.Booster(model_file=os.path.join(context.system_properties["model_dir"], "model.txt"))

    def handle(self, data, context):
        answers = []
        for item in data:
            rows = np.array(item["body"]["instances"], dtype=float)  # a JSON body arrives parsed (MMS decodes it)
            context.set_response_content_type(0, "application/json")
            answers.append(
                json.dumps({"scores": self.model.predict(rows).tolist(), "source": item.get("source", b"").decode()})
            )
        return answers
