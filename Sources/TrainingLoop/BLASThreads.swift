import Communication
import NeuralNet

#if canImport(Glibc)
import Glibc
#endif

/// One BLAS thread per core this rank can call its own: ranks sharing a node split its
/// cores instead of oversubscribing them. The real node (ranks sharing memory), not a
/// simulated grouping, decides how many ranks compete for the cores. Collective;
/// returns how many ranks share this rank's node.
func configureBLASThreads(requested: Int?, world: any Communicator) -> Int {
    let (threads, local) = blasThreadsPerRank(world)
    BLAS.setThreads(requested ?? threads)
    return local
}

/// The cores of this rank's node over the ranks of `world` on it, and how many those
/// are. Collective. A search asks it of the whole world, whose trials' loops each see
/// only their own group.
public func blasThreadsPerRank(_ world: any Communicator) -> (threads: Int, ranksOnNode: Int) {
    let node = world.splitByNode()
    let local = node.size
    node.release()
    return (max(1, onlineCores() / local), local)
}

func onlineCores() -> Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
