"""onnxruntime sessions as the build, the reference and the benchmark use them:
CPU, one intra-op and one inter-op thread, sequential execution (deterministic,
and comparable with an engine running on one core)."""

import onnxruntime as ort


def single_threaded(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
