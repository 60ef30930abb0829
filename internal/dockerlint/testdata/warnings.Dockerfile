from busybox as Build
MAINTAINER someone@example.com
ENV PATH /opt/bin:$PATH
WORKDIR app
RUN echo $UNDEFINED
COPY . $NOWHERE/x
CMD echo hello

FROM scratch AS final
COPY --from=Build /bin/busybox /bin/busybox
entrypoint ["/bin/busybox", "sh"]
