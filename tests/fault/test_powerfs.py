#!/usr/bin/env python3
"""The semantics of powerfs (tests/fault/powerfs.c), the power-loss layer.

Mounts powerfs on a scratch directory (needs root and /dev/fuse), performs
file and directory operations, cuts the power and checks that exactly the
synced state remains: per case, and against a model on random sequences
of writes, truncates and syncs over a few files.

Usage: test_powerfs.py POWERFS_BINARY
"""
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

POWERFS = None


class Mounted:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="powerfs-test-")
        self.backing = os.path.join(self.tmp, "backing")
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.backing)
        os.mkdir(self.mnt)
        self.log = open(os.path.join(self.tmp, "powerfs.log"), "w+")
        self.proc = subprocess.Popen([POWERFS, self.backing, self.mnt, "-f"],
                                     stderr=self.log)
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError("powerfs did not mount: " + self.log.read())
            time.sleep(0.02)

    def p(self, *parts):
        return os.path.join(self.mnt, *parts)

    def cut(self):
        with open(self.p(".powerfs-ctl"), "w") as f:
            f.write("cut")
        return self.stats()

    def stats(self):
        with open(self.p(".powerfs-ctl")) as f:
            return {k: int(v) for k, v in
                    (line.split() for line in f.read().splitlines())}

    def close(self):
        subprocess.run(["fusermount3", "-u", self.mnt], check=False)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", self.tmp], check=False)


def write_file(path, data, sync=False, flags=0):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flags, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PowerfsTest(unittest.TestCase):
    def setUp(self):
        self.m = Mounted()
        self.d = self.m.p("d")
        os.mkdir(self.d)
        fsync_dir(self.m.mnt)

    def tearDown(self):
        self.m.close()

    def durable_file(self, name, data):
        path = os.path.join(self.d, name)
        write_file(path, data, sync=True)
        fsync_dir(self.d)
        return path

    def test_unsynced_overwrite_and_append_reverted(self):
        old = bytes(range(256)) * 40  # 10240 bytes, 3 pages
        path = self.durable_file("f", old)
        fd = os.open(path, os.O_WRONLY)
        os.pwrite(fd, b"X" * 5000, 3000)
        os.pwrite(fd, b"tail", len(old) + 100)
        os.close(fd)
        self.assertNotEqual(read_file(path), old)
        st = self.m.cut()
        self.assertEqual(read_file(path), old)
        self.assertEqual(st["errors"], 0)
        self.assertGreaterEqual(st["pages_restored"], 2)

    def test_synced_data_survives(self):
        path = self.durable_file("f", b"a" * 100)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"b" * 50)
        os.fdatasync(fd)
        os.write(fd, b"c" * 50)  # after the sync: lost
        os.close(fd)
        self.m.cut()
        self.assertEqual(read_file(path), b"a" * 100 + b"b" * 50)

    def test_odsync_write_is_synced(self):
        path = self.durable_file("f", b"")
        fd = os.open(path, os.O_WRONLY | os.O_DSYNC)
        os.pwrite(fd, b"dsync", 0)
        os.close(fd)
        fd = os.open(path, os.O_WRONLY)
        os.pwrite(fd, b"later", 5)
        os.close(fd)
        self.m.cut()
        self.assertEqual(read_file(path), b"dsync")

    def test_shrink_reverted(self):
        data = os.urandom(20000)
        path = self.durable_file("f", data)
        os.truncate(path, 10)
        fd = os.open(path, os.O_WRONLY)
        os.pwrite(fd, b"Z" * 9000, 10)
        os.close(fd)
        self.m.cut()
        self.assertEqual(read_file(path), data)

    def test_create_without_dir_fsync_disappears(self):
        path = os.path.join(self.d, "new")
        write_file(path, b"synced data", sync=True)
        self.m.cut()
        self.assertFalse(os.path.exists(path))

    def test_create_with_dir_fsync_but_no_file_fsync_is_empty(self):
        path = os.path.join(self.d, "new")
        write_file(path, b"unsynced data")
        fsync_dir(self.d)
        self.m.cut()
        self.assertEqual(read_file(path), b"")

    def test_create_fully_synced_survives(self):
        path = os.path.join(self.d, "new")
        write_file(path, b"data", sync=True)
        fsync_dir(self.d)
        self.m.cut()
        self.assertEqual(read_file(path), b"data")

    def test_rename_over_without_dir_fsync_reverts(self):
        final = self.durable_file("final", b"old contents")
        tmp = os.path.join(self.d, "final.tmp")
        write_file(tmp, b"new contents", sync=True)
        os.rename(tmp, final)
        self.assertEqual(read_file(final), b"new contents")
        self.m.cut()
        self.assertEqual(read_file(final), b"old contents")
        self.assertEqual(sorted(os.listdir(self.d)), ["final"])

    def test_rename_over_with_dir_fsync_survives(self):
        final = self.durable_file("final", b"old contents")
        tmp = os.path.join(self.d, "final.tmp")
        write_file(tmp, b"new contents", sync=True)
        os.rename(tmp, final)
        fsync_dir(self.d)
        self.m.cut()
        self.assertEqual(read_file(final), b"new contents")
        self.assertEqual(sorted(os.listdir(self.d)), ["final"])

    def test_unlink_without_dir_fsync_comes_back(self):
        path = self.durable_file("f", b"keep me")
        fd = os.open(path, os.O_WRONLY)
        os.pwrite(fd, b"gone", 0)  # unsynced, reverted too
        os.close(fd)
        os.unlink(path)
        self.assertFalse(os.path.exists(path))
        self.m.cut()
        self.assertEqual(read_file(path), b"keep me")

    def test_unlink_with_dir_fsync_is_gone(self):
        path = self.durable_file("f", b"x")
        os.unlink(path)
        fsync_dir(self.d)
        self.m.cut()
        self.assertFalse(os.path.exists(path))
        self.assertEqual(os.listdir(os.path.join(self.m.backing, "grave")), [])

    def test_cross_directory_rename(self):
        os.mkdir(self.m.p("e"))
        fsync_dir(self.m.mnt)
        for synced_dir in (None, "d", "e"):
            path = self.durable_file("f", b"moving")
            fsync_dir(self.m.p("e"))
            os.rename(path, self.m.p("e", "g"))
            if synced_dir:  # either side makes the whole rename durable
                fsync_dir(self.m.p(synced_dir))
            st = self.m.cut()
            self.assertEqual(st["errors"], 0)
            moved = synced_dir is not None
            self.assertEqual(os.path.exists(path), not moved, synced_dir)
            self.assertEqual(read_file(self.m.p("e", "g") if moved else path),
                             b"moving")
            self.assertEqual(os.path.exists(self.m.p("e", "g")), moved)
            if moved:
                os.unlink(self.m.p("e", "g"))
            else:
                os.unlink(path)
            fsync_dir(self.d)
            fsync_dir(self.m.p("e"))

    def test_new_directory_tree_disappears(self):
        sub = os.path.join(self.d, "sub")
        os.mkdir(sub)
        write_file(os.path.join(sub, "x"), b"x", sync=True)
        fsync_dir(sub)
        self.m.cut()
        self.assertFalse(os.path.exists(sub))
        self.assertEqual(os.listdir(os.path.join(self.m.backing, "grave")), [])

    def test_rmdir_reverted(self):
        sub = os.path.join(self.d, "sub")
        os.mkdir(sub)
        fsync_dir(self.d)
        os.rmdir(sub)
        self.m.cut()
        self.assertTrue(os.path.isdir(sub))

    def test_nonempty_rmdir_refused(self):
        sub = os.path.join(self.d, "sub")
        os.mkdir(sub)
        write_file(os.path.join(sub, "x"), b"x")
        with self.assertRaises(OSError):
            os.rmdir(sub)

    def test_cut_twice_and_keep_working(self):
        path = self.durable_file("f", b"one")
        write_file(path, b"two")
        self.m.cut()
        self.assertEqual(read_file(path), b"one")
        write_file(path, b"three", sync=True)
        write_file(path + "2", b"four", sync=True)
        self.m.cut()
        self.assertEqual(read_file(path), b"three")
        self.assertFalse(os.path.exists(path + "2"))
        self.assertEqual(self.m.stats()["cuts"], 2)

    def test_random_against_model(self):
        """Random writes, truncates and syncs on 3 files, 40 cuts: after
        each cut every file equals the model's synced bytes."""
        rng = random.Random(int(os.environ.get("POWERFS_SEED", "7")))
        names = ["a", "b", "c"]
        live = {}
        synced = {}
        for n in names:
            data = rng.randbytes(rng.randrange(0, 30000))
            self.durable_file(n, data)
            live[n] = bytearray(data)
            synced[n] = bytes(data)
        for _ in range(40):
            fds = {n: os.open(os.path.join(self.d, n), os.O_RDWR)
                   for n in names}
            for _ in range(rng.randrange(1, 40)):
                n = rng.choice(names)
                op = rng.random()
                if op < 0.6:
                    off = rng.randrange(0, len(live[n]) + 9000)
                    data = rng.randbytes(rng.randrange(1, 9000))
                    os.pwrite(fds[n], data, off)
                    buf = live[n]
                    if off > len(buf):
                        buf.extend(b"\0" * (off - len(buf)))
                    buf[off:off + len(data)] = data
                elif op < 0.8:
                    size = rng.randrange(0, len(live[n]) + 5000)
                    os.ftruncate(fds[n], size)
                    buf = live[n]
                    if size < len(buf):
                        del buf[size:]
                    else:
                        buf.extend(b"\0" * (size - len(buf)))
                else:
                    os.fsync(fds[n])
                    synced[n] = bytes(live[n])
            for n in names:
                self.assertEqual(read_file(os.path.join(self.d, n)),
                                 bytes(live[n]))
                os.close(fds[n])
            st = self.m.cut()
            self.assertEqual(st["errors"], 0)
            for n in names:
                self.assertEqual(read_file(os.path.join(self.d, n)),
                                 synced[n], n)
                live[n] = bytearray(synced[n])


def main():
    global POWERFS
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    POWERFS = os.path.abspath(sys.argv.pop(1))
    return 0 if unittest.main(exit=False).result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
