package org.dsabi;

/**
 * Progress of {@link DatasetBuilder#build}, reported on the building thread about every chunk
 * read. Return {@code false} to stop the build (it then throws a {@link DsException} with
 * {@link Status#ABORTED}); an exception thrown here stops the build too and is rethrown by it.
 * Either way nothing is left at the output path.
 */
@FunctionalInterface
public interface BuildProgressListener {
    boolean onProgress(long bytesDone, long bytesTotal, long documents, long tokens);
}
