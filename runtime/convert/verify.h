/* capsula verify IMAGE (in capsula-convert, which reads squashfs with
 * libsquashfs): whether every part of an image decodes. */
#ifndef CAPSULA_VERIFY_H
#define CAPSULA_VERIFY_H

int verify_main(int argc, char **argv);

#endif
