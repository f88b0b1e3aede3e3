/** Labels on every container Baton starts: what re-adoption and stray removal find them by. */
export const TASK_LABEL = "baton.task.id";
export const SERVICE_LABEL = "baton.service.name";
export const NODE_LABEL = "baton.node.id";
/** On the engine networks and volumes Baton creates: the Baton network's id, the volume's name. */
export const NETWORK_LABEL = "baton.network.id";
export const VOLUME_LABEL = "baton.volume.name";
