FROM scratch
COPY a b
RUN <<EOF
