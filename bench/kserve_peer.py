"""KServe's LightGBM server for bench/peers.py, built only from PyPI packages (kserve, kserve-storage, lightgbm).

KServe's own LightGBM server (`lgbserver`) is not published on PyPI: it lives in the
kserve repository (python/lgbserver) and ships only inside the kserve/lgbserver image.
This launcher reproduces its behaviour with the public `kserve` API:

  * model file: the single `*.bst` file in --model_dir (lgbserver only accepts the
    `.bst` extension; the text format is fine, only the name matters);
  * Booster(params={"nthread": N}, model_file=...) with --nthread default 1 (lgbserver's
    DEFAULT_NTHREAD);
  * predict = kserve.utils.utils.get_predict_input(payload, columns=feature_name())
    -> booster.predict -> get_predict_response (V1 "instances"/"inputs", V2 FP64 tensors);
  * kserve.ModelServer(workers=...) with the standard kserve flags (--http_port,
    --grpc_port, --enable_grpc, --model_name, ...). lgbserver hard-codes workers=1;
    here --workers is honoured so multi-process KServe can be tried too (default 1).

Deviation needed on a shared host: kserve binds 0.0.0.0 (REST, hard-coded in
kserve.protocol.rest.server) and [::] (gRPC); --bind_host (default 127.0.0.1) makes
uvicorn bind there instead. Disable gRPC with --enable_grpc false.
"""

import argparse
import os

import kserve
import uvicorn
from kserve import Model
from kserve.errors import InferenceError, ModelMissingError
from kserve.utils.utils import get_predict_input, get_predict_response
from lightgbm import Booster

parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
parser.add_argument("--model_dir", required=True, help="directory holding exactly one *.bst file")
parser.add_argument("--nthread", type=int, default=1, help="LightGBM threads (lgbserver default 1)")
parser.add_argument("--bind_host", default="127.0.0.1", help="address uvicorn binds (kserve: 0.0.0.0)")
args, _ = parser.parse_known_args()

_Config = uvicorn.Config


class _LoopbackConfig(_Config):
    def __init__(self, *a, **kw):
        kw["host"] = args.bind_host
        super().__init__(*a, **kw)


uvicorn.Config = _LoopbackConfig  # kserve.protocol.rest.server looks it up as uvicorn.Config


class LightGBMModel(Model):
    def __init__(self, name, model_dir, nthread):
        super().__init__(name)
        self.model_dir = model_dir
        self.nthread = nthread

    def load(self):
        files = [
            os.path.join(self.model_dir, f)
            for f in os.listdir(self.model_dir)
            if f.endswith(".bst") and os.path.isfile(os.path.join(self.model_dir, f))
        ]
        if not files:
            raise ModelMissingError(self.model_dir)
        if len(files) > 1:
            raise RuntimeError(f"More than one model file is detected: {files}")
        self._booster = Booster(params={"nthread": self.nthread}, model_file=files[0])
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        try:
            instances = get_predict_input(payload, columns=self._booster.feature_name())
            result = self._booster.predict(instances)
            return get_predict_response(payload, result, self.name)
        except Exception as e:
            raise InferenceError(str(e)) from e


if __name__ == "__main__":
    model = LightGBMModel(args.model_name, args.model_dir, args.nthread)
    model.load()
    kserve.ModelServer(workers=args.workers).start([model])
