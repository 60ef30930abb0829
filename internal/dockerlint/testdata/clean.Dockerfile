FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "true"]
ENTRYPOINT ["/bin/busybox", "sleep", "60"]
