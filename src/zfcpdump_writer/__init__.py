"""zfcpdump writer: copies the s390x dump (/proc/vmcore or zcore/mem) to a zipl SCSI dump disk.

Standard library only; runs as /init of the zfcpdump initramfs. Entry: `main.main(argv)`.
"""

__version__ = "1.0"
