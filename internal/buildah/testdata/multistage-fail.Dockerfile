ARG X=1
FROM scratch AS one
COPY busybox /bin/busybox
RUN ["/bin/busybox","true"]
FROM scratch
COPY --from=one /bin/busybox /bin/busybox
RUN ["/bin/busybox","sh","-c","echo hi; exit 3"]
