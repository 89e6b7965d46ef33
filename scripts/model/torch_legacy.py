"""Read a state dict from PyTorch's legacy (pre-1.6, non-zip) .pth format, without torch.

The legacy file is a run of pickles followed by raw storage bytes:
  1. magic number 0x1950a86a20f9469cfc6c   2. protocol version 1001
  3. system info (endianness, type sizes)  4. the object itself, whose tensors
     refer to storages through persistent ids ('storage', type, key, location, numel, view)
  5. the list of storage keys, in the order their bytes follow
  6. for each key: an int64 element count, then count * element size raw bytes.

The unpickler below only resolves the few globals a state dict needs (an
OrderedDict, the tensor rebuild function, storage types); anything else is an
error, so reading an untrusted file cannot run code.
"""

import collections
import io
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class LegacyFormatError(Exception):
    pass


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _StorageRef:
    """A storage named by the pickle; its bytes are filled in after the pickles."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array = None


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self):
        base = self.storage.array
        itemsize = base.dtype.itemsize
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=base.dtype)
        if needed > base.size:
            raise LegacyFormatError(f"tensor view exceeds its storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride]
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, *rest):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise LegacyFormatError(f"refusing to load {module}.{name} from the checkpoint")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise LegacyFormatError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise LegacyFormatError("storage views are not supported")
        if not isinstance(storage_type, _StorageType):
            raise LegacyFormatError(f"unknown storage type {storage_type!r}")
        ref = self.storages.get(key)
        if ref is None:
            ref = self.storages[key] = _StorageRef(key, storage_type.dtype, numel)
        return ref


def _plain_load(f):
    """The header pickles hold only ints and dicts: no globals allowed."""

    class NoGlobals(pickle.Unpickler):
        def find_class(self, module, name):
            raise LegacyFormatError(f"unexpected global {module}.{name} in the header")

    return NoGlobals(f).load()


def load_state_dict(data):
    """bytes of a legacy .pth -> OrderedDict name -> numpy array."""
    f = io.BytesIO(data)
    if _plain_load(f) != MAGIC:
        raise LegacyFormatError("not a legacy PyTorch file (bad magic number; zip-format files are not supported)")
    if _plain_load(f) != PROTOCOL:
        raise LegacyFormatError("unsupported legacy protocol version")
    sys_info = _plain_load(f)
    if not sys_info.get("little_endian", False):
        raise LegacyFormatError("big-endian checkpoints are not supported")
    storages = {}
    obj = _RestrictedUnpickler(f, storages).load()
    keys = _plain_load(f)
    if sorted(keys) != sorted(storages):
        raise LegacyFormatError("the storage key list does not match the storages the object uses")
    for key in keys:
        ref = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        if numel != ref.numel:
            raise LegacyFormatError(f"storage {key}: {numel} elements on disk, {ref.numel} in the pickle")
        nbytes = numel * ref.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise LegacyFormatError(f"storage {key}: file truncated")
        ref.array = np.frombuffer(raw, dtype=ref.dtype.newbyteorder("<"))
    if f.read(1):
        raise LegacyFormatError("trailing bytes after the last storage")
    if not isinstance(obj, dict):
        raise LegacyFormatError(f"expected a state dict, got {type(obj).__name__}")
    return collections.OrderedDict((name, t.to_numpy()) for name, t in obj.items())
