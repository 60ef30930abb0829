// Package openshift is the build backend that hands the build stage to an
// OpenShift cluster: one BuildConfig per index entry, one Build per run,
// followed with a watch and its log streamed from the builds/log
// subresource. It implements backend.Builder; its handle is
// `namespace/build-name`, so a restarted cccp reattaches to a Build that is
// still running, or reads the result of one that finished meanwhile.
//
// # Objects
//
// The BuildConfig of an entry is named after the entry's key, made a valid
// DNS-1123 label and kept short, with a hash of the whole key appended so two
// keys that sanitise alike (`a/b:c` and `a-b/c`) never share one. It is
// created on the first build and updated when what cccp wants differs
// (Docker strategy, git source with contextDir = git-path/build-context,
// dockerfilePath relative to it, output DockerImage = the stage tag with the
// configured push secret, noCache off, resources and node selector from the
// configuration, labels and annotations naming the entry). Its run policy is
// Parallel: cccp's pipeline supersedes and cancels runs itself, and a
// trial build of a pull request must not wait behind the branch's build.
// It has no triggers: only cccp starts its builds.
//
// Each run instantiates the BuildConfig with a BuildRequest that names the
// exact commit (revision.git.commit), carries the run's labels and
// annotations (OpenShift copies them onto the Build), and build args
// CCCP_RUN_ID and CCCP_COMMIT for Dockerfiles that declare them.
//
// The push target (`:test`, `:<tag>-test`, `:run-N`) differs between runs of
// one entry, and a BuildRequest cannot override the output, so the
// BuildConfig is brought up to date and instantiated under one lock per
// BuildConfig in this process (cccp runs as a single replica), and the Build
// that comes back is checked to push where this run asked.
//
// # Parents
//
// A parent of this index is pinned through the Docker strategy's `from`
// (a DockerImage reference by digest), not through build args: a build arg
// only reaches a Dockerfile written as `FROM ${BASE}`, and index Dockerfiles
// name their parent plainly. `from` replaces the image of the last FROM
// stage only, and the pipeline's BuildSpec.Parents does not say which stage
// a parent is FROM, so this backend accepts at most one parent and takes it
// to be the final stage's base (the usual shape: builder stages FROM
// toolchain images, the final stage FROM the index's parent). An entry with
// more than one parent of this index fails at StartBuild with reason
// Unsupported; its Dockerfile would need the pinned lines sent inline
// (source.dockerfile), which is not built yet.
//
// The pipeline pins the parents an entry names in depends-on
// (BuildSpec.Parents). BuildSpec.Resolve, which the local backend asks
// about every FROM line it reads, is not used: OpenShift reads the
// Dockerfile in the cluster, so a FROM line naming an image of this index
// that is not in depends-on is built as written.
//
// WaitBuild reports the bases a Build used from the FROM steps of its log
// (one request for the finished log): the Build object does not list them.
//
// # Registries
//
// The cluster pushes to BuildSpec.Push itself, so the delivery registry
// must be reachable from the build pods: cccp's embedded registry on
// loopback is not. Deliver to a registry both reach (registry.external),
// and set Config.Registry when the cluster knows it under another host.
//
// # prebuild-script
//
// Not supported on this backend: an OpenShift Docker build runs no script
// before the build, and a custom builder image would run repository code with
// the builder's privileges. StartBuild refuses such an entry with reason
// Unsupported, and the index lint reports it when this backend is configured
// (index.LintOptions.PrebuildUnsupported).
//
// # Following
//
// Wait and Log never poll. They read the Build once, then watch it with a
// field selector on its name from that resourceVersion, with a server-side
// timeout (5 minutes by default); a watch that closes is re-established from
// the last resourceVersion seen (after a 410 Gone, from a fresh read). A
// watch that ends without news is retried with a growing pause (up to 30 s),
// and no two requests of one follower are less than two seconds apart, so
// Wait and Log together cost at most one request a second even against a
// server that closes every watch at once, and one request per watch timeout
// at steady state (BenchmarkFollow reports both).
//
// The log is read from builds/log with follow=true once the Build runs.
// Log(offset) skips the first offset bytes (the subresource has no byte
// offset); a stream that ends while the Build still runs is opened again and
// the bytes already written are skipped.
//
// Cancel sets status.cancelled on the Build (as `oc cancel-build` does);
// OpenShift's build controller stops its pod and the Build ends Cancelled.
//
// # Phases
//
//	New, Pending, Running   still going
//	Complete                BuildResult{Digest: status.output.to.imageDigest}
//	Failed, Error           *backend.StageError{Reason: status.reason, Message: status.message}
//	Cancelled               *backend.StageError{Reason: "Cancelled"}
//
// A few OpenShift reasons get cccp's common words: OutOfMemoryKilled is
// OutOfMemory, PullBuilderImageFailed is PullFailed.
//
// # Permissions
//
// The API requests this backend makes, as (verb, resource, subresource), are
// recorded by the tests in testdata/actions.txt; a Role for cccp's
// service account grants exactly those in its namespace.
package openshift
