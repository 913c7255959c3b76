"""The writer's errors: each carries a one-line message for the console."""


class DumpError(Exception):
    """A refusal or failure the operator must see; str() is one clear line."""


class LayoutError(DumpError):
    """The disk is not a valid zipl SCSI dump disk (MBR, boot_info, superblock, partition)."""


class ChecksumError(LayoutError):
    """The dump area changed since zipl prepared it: refuse to write."""


class ElfError(DumpError):
    """The dump source is not a usable big-endian s390x ELF64 core."""


class ConfigError(DumpError):
    """The baked configuration file is malformed."""


class NoDumpSource(DumpError):
    """Neither /proc/vmcore nor zcore/mem exists."""


class Interrupted(DumpError):
    """A signal arrived while dumping."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
