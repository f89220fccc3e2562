package state

// Key layout (see docs/state.md). Names are ECS names, which never contain
// '/', so a name is a safe key segment.
const (
	clustersPrefix         = Prefix + "clusters/"
	inactiveClustersPrefix = Prefix + "inactive-clusters/"
	instancesPrefix        = Prefix + "instances/" // instances/<cluster>/<id>: ACTIVE, DRAINING, DEREGISTERING
	servicesPrefix         = Prefix + "services/"  // services/<cluster>/<name>
	tasksPrefix            = Prefix + "tasks/"     // tasks/<cluster>/<id>: tasks not yet STOPPED

	// Container instances and tasks (state/instances.go, state/tasks.go).
	inactiveInstancesPrefix = Prefix + "inactive-instances/" // <cluster>/<id>, on a lease
	connectedPrefix         = Prefix + "instance-connected/" // <cluster>/<id>, on the heartbeat lease
	stoppedTasksPrefix      = Prefix + "stopped-tasks/"      // <cluster>/<id>, on a lease
	instanceTasksPrefix     = Prefix + "tasks-by-instance/"  // <cluster>/<instance id>/<task id>
	joinTokensPrefix        = Prefix + "join-tokens/"        // <sha256 of the token, hex>

	// Task definitions (state/taskdefs.go). A revision's key is
	// <family>#<revision, 10 digits>: '#' sorts below every family name
	// character, so key order is ECS's list order (family, then revision).
	taskDefFamiliesPrefix = Prefix + "taskdef-families/"   // taskdef-families/<family>
	taskDefsPrefix        = Prefix + "taskdefs/"           // taskdefs/<family>#<revision>
	taskDefStatusPrefix   = Prefix + "taskdefs-by-status/" // taskdefs-by-status/<status>/<family>#<revision>

	// Services (state/services.go): ACTIVE and DRAINING ones live under
	// servicesPrefix (DeleteCluster's guard), INACTIVE ones apart, on a lease.
	inactiveServicesPrefix = Prefix + "inactive-services/" // <cluster>/<name>
	// controllerWatermarkKey holds the etcd revision up to which the service
	// controller has accounted for stopped tasks (state/services_watch.go).
	controllerWatermarkKey = Prefix + "controller/services-watermark"
)

// ControllersElection is the etcd prefix of the election that picks the
// server running the controllers (controller.Leader).
const ControllersElection = Prefix + "leader/controllers"

func clusterKey(name string) string         { return clustersPrefix + name }
func inactiveClusterKey(name string) string { return inactiveClustersPrefix + name }
func instancesOf(cluster string) string     { return instancesPrefix + cluster + "/" }
func servicesOf(cluster string) string      { return servicesPrefix + cluster + "/" }
func tasksOf(cluster string) string         { return tasksPrefix + cluster + "/" }

func serviceKey(cluster, name string) string { return servicesOf(cluster) + name }
func inactiveServiceKey(cluster, name string) string {
	return inactiveServicesPrefix + cluster + "/" + name
}

func instanceKey(cluster, id string) string         { return instancesOf(cluster) + id }
func inactiveInstancesOf(cluster string) string     { return inactiveInstancesPrefix + cluster + "/" }
func inactiveInstanceKey(cluster, id string) string { return inactiveInstancesOf(cluster) + id }
func connectedOf(cluster string) string             { return connectedPrefix + cluster + "/" }
func connectedKey(cluster, id string) string        { return connectedOf(cluster) + id }
func taskKey(cluster, id string) string             { return tasksOf(cluster) + id }
func stoppedTasksOf(cluster string) string          { return stoppedTasksPrefix + cluster + "/" }
func stoppedTaskKey(cluster, id string) string      { return stoppedTasksOf(cluster) + id }
func clusterInstanceTasks(cluster string) string    { return instanceTasksPrefix + cluster + "/" }
func instanceTasksOf(cluster, instance string) string {
	return clusterInstanceTasks(cluster) + instance + "/"
}
func instanceTaskKey(cluster, instance, task string) string {
	return instanceTasksOf(cluster, instance) + task
}
