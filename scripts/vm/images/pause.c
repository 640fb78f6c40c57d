/* The pod sandbox's process (the "pause" container): it holds the pod's namespaces, reaps the zombies
 * of processes that end up as its children (it is PID 1 of the pod), and exits on SIGINT or SIGTERM.
 * Built static (scripts/vm/build-image.sh) so the image needs nothing but this file. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static void handle(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = sig == SIGCHLD ? SA_NOCLDSTOP | SA_RESTART : 0;
  if (sigaction(sig, &sa, NULL) != 0) {
    perror("pause: sigaction");
    exit(1);
  }
}

int main(void) {
  if (getpid() != 1) fprintf(stderr, "pause: not PID 1, zombies of other processes are not reaped\n");
  handle(SIGINT, on_stop);
  handle(SIGTERM, on_stop);
  handle(SIGCHLD, on_child);
  for (;;) pause();
}
